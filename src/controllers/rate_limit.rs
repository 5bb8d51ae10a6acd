//! The general rate limit on every `/api` request, with the contract's
//! `RateLimit-*` headers on every limited response.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use super::client_ip::ClientKeyExtractor;
use crate::error::{AppError, write_rate_limit_headers};
use crate::services::audit::with_client_address;
use crate::services::rate_limit::{ClientKey, RateLimitService};

fn is_cors_preflight(request: &ServiceRequest) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

pub async fn limit_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limiter = request.app_data::<web::Data<RateLimitService>>().cloned();
    let clients = request.app_data::<web::Data<ClientKeyExtractor>>().cloned();
    let (Some(limiter), Some(clients)) = (limiter, clients) else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    if is_cors_preflight(&request) {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let address = clients.address(request.request());
    let client = ClientKey::of(address);
    let decision = limiter.check_request(&client).await;
    request.extensions_mut().insert(client);
    if let Some(decision) = decision.filter(|decision| !decision.allowed) {
        let response = AppError::RateLimited(decision).error_response();
        return Ok(request.into_response(response));
    }
    // The audit log records where each account event came from.
    let mut response = with_client_address(address, next.call(request)).await?;
    // A stricter limit (login) may have set the headers already.
    if let Some(decision) = decision
        && !response.headers().contains_key("ratelimit-limit")
    {
        write_rate_limit_headers(response.headers_mut(), &decision);
    }
    Ok(response.map_into_boxed_body())
}
